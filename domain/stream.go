package domain

import (
	"strings"

	"github.com/google/uuid"
)

// StreamPrefix starts the name of every customer stream.
const StreamPrefix = "customer-"

// StreamID names the stream holding one customer's history:
// "customer-" followed by the canonical (lower-case, hyphenated) uuid.
func StreamID(customerID uuid.UUID) string {
	return StreamPrefix + customerID.String()
}

// ParseStreamID returns the customer id of a stream named by StreamID. It
// strips the prefix and parses the rest as a whole (never splitting on '-',
// which would cut the uuid), and accepts only the canonical form StreamID
// writes, so that one customer has exactly one stream name.
func ParseStreamID(stream string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(stream, StreamPrefix)
	if !ok {
		return uuid.Nil, &ValidationError{Field: "stream", Rule: "must start with " + StreamPrefix}
	}
	id, err := uuid.Parse(rest)
	if err != nil || id.String() != rest {
		return uuid.Nil, &ValidationError{Field: "stream", Rule: "must be " + StreamPrefix + " followed by a lower-case hyphenated uuid"}
	}
	if id == uuid.Nil {
		return uuid.Nil, &ValidationError{Field: "stream", Rule: "customer id must not be the nil uuid"}
	}
	return id, nil
}
