package main

import "errors"

// errUsage means the usage was already printed; exit with status 2.
var errUsage = errors.New("usage")
