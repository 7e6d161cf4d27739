package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// recordJSON is the one JSON shape of a stored event, used by every export,
// feed and CLI: data is embedded as the JSON document it is, not base64.
type recordJSON struct {
	ID         uuid.UUID       `json:"id"`
	Stream     string          `json:"stream"`
	Type       string          `json:"type"`
	Version    uint64          `json:"version"`
	Position   uint64          `json:"position"`
	RecordedAt time.Time       `json:"recordedAt"`
	Data       json.RawMessage `json:"data"`
	Metadata   Metadata        `json:"metadata"`
}

// MarshalJSON encodes the record with its data inline as JSON, byte for
// byte: no HTML escaping of <, > and &. An encoder around it must not add
// that escaping either (json.Encoder.SetEscapeHTML(false)), or data comes
// out equal in meaning but not in bytes.
func (r Record) MarshalJSON() ([]byte, error) {
	data := json.RawMessage(r.Data)
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(recordJSON{
		ID: r.ID, Stream: r.Stream, Type: r.Type, Version: r.Version, Position: r.Position,
		RecordedAt: r.RecordedAt, Data: data, Metadata: r.Metadata,
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

// UnmarshalJSON decodes what MarshalJSON produced. The data bytes are kept
// exactly as they stand in the input.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	*r = Record{
		ID: j.ID, Stream: j.Stream, Type: j.Type, Version: j.Version, Position: j.Position,
		RecordedAt: j.RecordedAt, Data: []byte(j.Data), Metadata: j.Metadata,
	}
	return nil
}
