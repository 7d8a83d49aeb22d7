package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIKeyPrefix starts every DeskForge API key.
const APIKeyPrefix = "df_"

// lastUsedGranularity bounds how often authenticating with a key writes its
// LastUsedAt: at most once per interval, so reads stay reads.
const lastUsedGranularity = time.Minute

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// HashAPIKey returns the hex SHA-256 of a plaintext key, as stored.
func HashAPIKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// NewAPIKeyParams describes a key to create.
type NewAPIKeyParams struct {
	Name string
	// Role is RoleAdmin or RoleProject.
	Role string
	// ProjectID is required for a project key and must be empty for an
	// admin key.
	ProjectID string
}

// CreateAPIKey creates a key and returns its row and the plaintext key,
// which is never stored (only its SHA-256) and cannot be shown again.
func (s *Store) CreateAPIKey(ctx context.Context, p NewAPIKeyParams) (APIKey, string, error) {
	if err := checkText("name", p.Name, 200); err != nil {
		return APIKey{}, "", err
	}
	k := APIKey{ID: NewID("key"), Name: p.Name, Role: p.Role, CreatedAt: time.Now().UTC()}
	switch p.Role {
	case RoleAdmin:
		if p.ProjectID != "" {
			return APIKey{}, "", Invalid("projectId", "an admin key belongs to no project; omit projectId or use role project")
		}
	case RoleProject:
		if p.ProjectID == "" {
			return APIKey{}, "", Invalid("projectId", "a project key needs projectId (proj_…)")
		}
		if !IsID("proj", p.ProjectID) {
			return APIKey{}, "", Invalid("projectId", "projectId must be a project id: proj_ and 26 lowercase letters and digits")
		}
		if _, err := s.GetProject(ctx, p.ProjectID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return APIKey{}, "", Invalid("projectId", "project %s does not exist", p.ProjectID)
			}
			return APIKey{}, "", fmt.Errorf("create api key: %w", err)
		}
		pid := p.ProjectID
		k.ProjectID = &pid
	default:
		return APIKey{}, "", Invalid("role", "role must be one of admin, project")
	}
	secret := make([]byte, 30)
	if _, err := rand.Read(secret); err != nil {
		return APIKey{}, "", fmt.Errorf("create api key: random: %w", err)
	}
	plaintext := APIKeyPrefix + strings.ToLower(keyEncoding.EncodeToString(secret))
	k.Hash = HashAPIKey(plaintext)
	k.Prefix = plaintext[:len(APIKeyPrefix)+6]
	if err := s.Gorm(ctx).Create(&k).Error; err != nil {
		return APIKey{}, "", translate(err, "create api key")
	}
	return k, plaintext, nil
}

// AuthenticateAPIKey returns the active key whose plaintext is given.
// ErrNotFound when the key is unknown, malformed or revoked. It records the
// key's use at most once a minute.
func (s *Store) AuthenticateAPIKey(ctx context.Context, plaintext string) (APIKey, error) {
	if !strings.HasPrefix(plaintext, APIKeyPrefix) || len(plaintext) > 200 {
		return APIKey{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	}
	hash := HashAPIKey(plaintext)
	var k APIKey
	if err := s.reader(bounded(ctx)).Where("hash = ?", hash).Take(&k).Error; err != nil {
		return APIKey{}, translate(err, "authenticate")
	}
	// The lookup is by an index on the hash; compare again in constant time
	// so the decision itself never depends on a byte-wise comparison.
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 || k.RevokedAt != nil {
		return APIKey{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	}
	now := time.Now().UTC()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= lastUsedGranularity {
		if err := s.Gorm(ctx).Model(&APIKey{}).Where("id = ?", k.ID).Update("last_used_at", now).Error; err != nil {
			return APIKey{}, fmt.Errorf("authenticate: record use of %s: %w", k.ID, err)
		}
		k.LastUsedAt = &now
	}
	return k, nil
}

// GetAPIKey reads one key by id.
func (s *Store) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	var k APIKey
	err := s.Gorm(ctx).Where("id = ?", id).Take(&k).Error
	return k, translate(err, "get api key "+id)
}

// ListAPIKeys lists keys newest first, revoked ones included; projectID ""
// lists every key.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]APIKey, error) {
	q := s.Gorm(ctx).Model(&APIKey{})
	if projectID != "" {
		q = q.Where("project_id = ?", projectID)
	}
	var ks []APIKey
	if err := q.Order("id DESC").Find(&ks).Error; err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return ks, nil
}

// RevokeAPIKey revokes a key; revoking a revoked key changes nothing.
// ErrNotFound when no key has that id.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	k, err := s.GetAPIKey(ctx, id)
	if err != nil {
		return APIKey{}, err
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	now := time.Now().UTC()
	if err := s.Gorm(ctx).Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error; err != nil {
		return APIKey{}, fmt.Errorf("revoke api key %s: %w", id, err)
	}
	k.RevokedAt = &now
	return k, nil
}
