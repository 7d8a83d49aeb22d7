package main

import (
	"context"
	"errors"
	"io"
)

func runTemplate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("template: not implemented yet")
}
