package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// RouteConfig says where an Ingest consumes from and where poisoned
// messages go.
type RouteConfig struct {
	// Name is the router handler's name (default "cxledger-ingest").
	Name string
	// Topic is the topic touchpoint messages are consumed from. Required.
	Topic string
	// Subscriber consumes Topic. Required.
	Subscriber message.Subscriber
	// PoisonPublisher and PoisonTopic receive messages that can never be
	// ingested, with the reason in metadata "reason_poisoned"
	// (middleware.ReasonForPoisonedKey). Required: dropping a touchpoint
	// silently is not an option, and without a poison queue a bad message
	// would be redelivered forever.
	PoisonPublisher message.Publisher
	PoisonTopic     string
	// MaxRetries bounds the in-place retries of a retryable failure before
	// the message is nacked for the broker to redeliver (default 5;
	// negative: no in-place retry).
	MaxRetries int
	// InitialInterval and MaxInterval bound the exponential backoff
	// between retries (defaults 100ms and 5s).
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Logger receives the retry middleware's messages (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c *RouteConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "cxledger-ingest"
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = 5
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.InitialInterval <= 0 {
		c.InitialInterval = 100 * time.Millisecond
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a missing field.
func (c RouteConfig) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("missing Topic"))
	}
	if c.Subscriber == nil {
		errs = append(errs, errors.New("missing Subscriber"))
	}
	if c.PoisonPublisher == nil || c.PoisonTopic == "" {
		errs = append(errs, errors.New("missing PoisonPublisher or PoisonTopic"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("broker: route: %w", err)
	}
	return nil
}

// Middleware returns the middleware Handle needs, outermost first: the
// poison queue for permanent failures (IsPermanent), then bounded retries
// of the others. A retryable failure that outlasts the retries leaves both
// as an error, and the router nacks the message for redelivery.
func (c RouteConfig) Middleware() ([]message.HandlerMiddleware, error) {
	c.setDefaults()
	poison, err := middleware.PoisonQueueWithFilter(c.PoisonPublisher, c.PoisonTopic, IsPermanent)
	if err != nil {
		return nil, fmt.Errorf("broker: poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      c.MaxRetries,
		InitialInterval: c.InitialInterval,
		MaxInterval:     c.MaxInterval,
		Multiplier:      2,
		// Jitter spreads the retries of consumers that failed together
		// (a store restart) so that they do not return together.
		RandomizationFactor: 0.2,
		ShouldRetry:         func(p middleware.RetryParams) bool { return !IsPermanent(p.Err) },
		// The handler's context may have been cancelled by an attempt's
		// deadline; each retry starts from the message's own.
		ResetContextOnRetry: true,
		Logger:              watermill.NewSlogLogger(c.Logger),
	}
	return []message.HandlerMiddleware{poison, retry.Middleware}, nil
}

// AddHandler adds in's handler to r, consuming cfg.Topic from
// cfg.Subscriber, with the poison queue and retry middleware in front of
// it. Run the router (r.Run) to start consuming; when r is already
// running, call r.RunHandlers too.
func (in *Ingest) AddHandler(r *message.Router, cfg RouteConfig) (*message.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mw, err := cfg.Middleware()
	if err != nil {
		return nil, err
	}
	h := r.AddConsumerHandler(cfg.Name, cfg.Topic, cfg.Subscriber, in.Handle)
	h.AddMiddleware(mw...)
	return h, nil
}
