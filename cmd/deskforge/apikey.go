package main

import (
	"context"
	"errors"
	"io"
)

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("apikey: not implemented yet")
}
