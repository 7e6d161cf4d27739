// Command cxledger is the customer-interaction ledger: it appends customer
// touchpoints to an event store and reads them back. main only wires; the
// work is done by the packages it opens.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
