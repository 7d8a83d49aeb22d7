package main

import (
	"context"
	"errors"
	"io"
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("version: not implemented yet")
}
