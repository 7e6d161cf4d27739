package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	c := ServiceConfig{URL: "nats://ops:p%40ss-s3cret@a:4222,nats://t0k-s3cret@b:4222,nats://c:4222"}
	if got := c.redactedURL(); strings.Contains(got, "s3cret") || !strings.Contains(got, "ops:xxxxx@a:4222") || !strings.Contains(got, "nats://c:4222") {
		t.Fatalf("redacted %s", got)
	}
	if got := c.scrub(errors.New("auth failed for p@ss-s3cret and p%40ss-s3cret and t0k-s3cret")); strings.Contains(got, "s3cret") {
		t.Fatalf("scrubbed %s", got)
	}
}
