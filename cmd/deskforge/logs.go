package main

import (
	"context"
	"errors"
	"io"
)

func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("logs: not implemented yet")
}
