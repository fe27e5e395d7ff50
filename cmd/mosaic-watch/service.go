package main

import (
	"context"
	"errors"
)

// cmdService is replaced by the service integration (kardianos/service).
func cmdService(_ context.Context, _ *cliEnv, _ []string) error {
	return errors.New("service: not implemented yet")
}
