// Package delivery sends the messages the ledger's automations queue
// (domain.MessageQueued) through channel adapters — an HTTP webhook
// (Webhook) and SMTP (SMTP) — and records what became of each one in the
// customer's stream: domain.MessageDelivered, or domain.MessageFailed with
// the reason.
//
// # One owner, at least once
//
// A Worker follows the log's MessageQueued events from a checkpoint kept
// in a read-model backend namespace. With Leases it runs only while it
// holds its lease ("relay/delivery" by default), across every process
// sharing the backend, and each checkpoint save is fenced by that lease
// (projections.Claim): a worker that lost its lease without noticing
// records no progress for the new owner.
//
// For every message the worker folds the customer's stream first. A
// message that already has an outcome is skipped, so a worker resuming
// from an older checkpoint sends nothing twice that it had recorded. Every
// outcome is appended under domain.DeliveryOutcomeID(message id): a second
// record of one message (a worker fenced out mid-batch, a retry) is
// refused by the store, so a message has exactly one outcome in the log.
// What a crash can still do is send a message whose outcome it had not yet
// recorded once more after the restart: at least once, at most once more
// per crash. Receivers deduplicate by the message id, which every send
// carries (the webhook's Idempotency-Key header, the mail's Message-ID).
//
// # Checked again at send time
//
// Between queuing and sending a customer may withdraw consent or be
// erased. Before each attempt the worker decides on the stream as it is
// then: a marketing message whose consent was withdrawn is not sent
// (MessageFailed, reason consent_withdrawn), nor is any message of a
// forgotten customer (customer_erased). The recipient's address is the
// customer's latest linked e-mail or phone identifier, a sealed token in
// the log: the worker reveals it through the keyring in memory only, for
// the send, and never logs it.
package delivery
