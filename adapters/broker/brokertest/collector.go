package brokertest

import (
	"context"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Collector gathers the messages of one subscription, acking each.
type Collector struct {
	mu   sync.Mutex
	msgs []*message.Message
}

// Collect subscribes to topic until the test ends and gathers what arrives.
func Collect(t testing.TB, sub message.Subscriber, topic string) *Collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	c := &Collector{}
	go func() {
		for m := range ch {
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
			m.Ack()
		}
	}()
	return c
}

// All returns the messages received so far, in arrival order.
func (c *Collector) All() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

// ByID indexes the messages by uuid (the first delivery of each) and counts
// the deliveries of each uuid.
func (c *Collector) ByID() (map[string]*message.Message, map[string]int) {
	first, n := map[string]*message.Message{}, map[string]int{}
	for _, m := range c.All() {
		if n[m.UUID] == 0 {
			first[m.UUID] = m
		}
		n[m.UUID]++
	}
	return first, n
}
