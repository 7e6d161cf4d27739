package script

import (
	"encoding/json"

	"github.com/dop251/goja"

	"github.com/cxledger/cxledger/domain"
)

// event is the object handlers receive, as KurrentDB hands it to them
// plus cxledger's position and times. It is a goja DynamicObject: each
// property is made when a handler reads it, so a handler that looks only
// at e.eventType or e.streamId never pays for the body, which is encoded
// and parsed on first access and then kept for the event's other calls.
// The object is read-only.
type event struct {
	v         *vm
	env       *domain.Envelope
	partition string
	body      goja.Value
	raw       []byte
	metadata  goja.Value
}

var eventKeys = []string{
	"eventType", "streamId", "sequenceNumber", "eventId", "position",
	"occurredAt", "recordedAt", "partition", "body", "data", "bodyRaw",
	"metadata", "isJson",
}

var _ goja.DynamicObject = (*event)(nil)

func (e *event) Get(key string) goja.Value {
	rt := e.v.rt
	switch key {
	case "eventType":
		return e.v.typeName(e.env.Type)
	case "streamId":
		return rt.ToValue(e.env.Stream)
	case "sequenceNumber":
		return rt.ToValue(e.env.Version)
	case "eventId":
		return rt.ToValue(e.env.ID.String())
	case "position":
		return rt.ToValue(e.env.Position)
	case "occurredAt":
		return rt.ToValue(timeText(e.env.Metadata.OccurredAt))
	case "recordedAt":
		return rt.ToValue(timeText(e.env.RecordedAt))
	case "partition":
		return rt.ToValue(e.partition)
	case "body", "data":
		if e.body == nil {
			e.body = e.parse(e.bodyRaw())
		}
		return e.body
	case "bodyRaw":
		return rt.ToValue(string(e.bodyRaw()))
	case "metadata":
		if e.metadata == nil {
			m, err := json.Marshal(e.env.Metadata)
			if err != nil {
				panic(rt.NewGoError(err))
			}
			e.metadata = e.parse(m)
		}
		return e.metadata
	case "isJson":
		return rt.ToValue(true)
	}
	return nil
}

// bodyRaw is the event's payload as JSON, as the store holds it at its
// current schema version.
func (e *event) bodyRaw() []byte {
	if e.raw == nil {
		b, err := json.Marshal(e.env.Event)
		if err != nil {
			panic(e.v.rt.NewGoError(err))
		}
		e.raw = b
	}
	return e.raw
}

// parse is JSON.parse as the runtime had it before the script ran.
func (e *event) parse(b []byte) goja.Value {
	v, err := e.v.parse(goja.Undefined(), e.v.rt.ToValue(string(b)))
	if err != nil {
		panic(err)
	}
	return v
}

func (e *event) Set(string, goja.Value) bool { return false }

func (e *event) Has(key string) bool {
	for _, k := range eventKeys {
		if k == key {
			return true
		}
	}
	return false
}

func (e *event) Delete(string) bool { return false }

func (e *event) Keys() []string { return eventKeys }
