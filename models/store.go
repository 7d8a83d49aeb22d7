package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// Domain errors returned by the store (and wrapped by callers). The HTTP
// layer maps them to status codes in one place.
var (
	// ErrNotFound: the row does not exist (or is not visible to the caller).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request conflicts with the current state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed or breaks a rule.
	ErrInvalid = errors.New("invalid")
)

// Store reads and writes DeskForge's models. It is safe for concurrent use.
type Store struct {
	db *DB
}

// NewStore returns a store on db.
func NewStore(db *DB) *Store { return &Store{db: db} }

// DB returns the underlying database.
func (s *Store) DB() *DB { return s.db }

// Gorm returns a GORM handle bound to ctx.
func (s *Store) Gorm(ctx context.Context) *gorm.DB { return s.db.Gorm.WithContext(ctx) }

// Tx runs fn in one transaction, committed when fn returns nil. Inside fn use
// only tx (never the store's pool): on SQLite the pool has one connection.
// River jobs go into the same transaction with Jobs().InsertTx(ctx, tx, …).
func (s *Store) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.db.pgPool != nil {
		return s.db.pgTransaction(ctx, fn)
	}
	var sqlTx *sql.Tx
	err := s.db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx = s.db.outbox.notifier.beginTx(tx)
		return fn(tx)
	})
	s.db.outbox.notifier.endTx(sqlTx, err == nil)
	return err
}

// Jobs returns the inserter of River jobs inside Tx's transactions.
func (s *Store) Jobs() *Jobs { return s.db.jobs }

// translate maps GORM errors to the store's domain errors.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, err)
}
