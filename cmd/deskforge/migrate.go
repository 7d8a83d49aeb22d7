package main

import (
	"context"
	"errors"
	"io"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("migrate: not implemented yet")
}
