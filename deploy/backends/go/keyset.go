package openidtoken

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "gopkg.in/square/go-jose.v2"
)

const (
	// keysMaxAge is how long a fetched key set is used: the gateway's Cache-Control max-age.
	keysMaxAge = 5 * time.Minute
	// unknownKidWait is the least time between two fetches caused by unknown kids.
	unknownKidWait = 30 * time.Second
	// keySetLimit bounds the size of the key set document.
	keySetLimit = 1 << 20
)

// keySet is the gateway's published keys (its jwks.json), fetched when first needed, again
// when older than keysMaxAge, and again when a token names an unknown kid.
type keySet struct {
	url    string
	client *http.Client

	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetched time.Time // of the last attempt, successful or not
	err     error     // of the last attempt
}

func newKeySet(url string, client *http.Client) *keySet {
	return &keySet{url: url, client: client}
}

// key is the key called kid. If the gateway cannot be reached, the keys fetched before are
// used.
func (s *keySet) key(kid string) (*jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := s.set.Key(kid)
	age := time.Since(s.fetched)
	if s.fetched.IsZero() || age > keysMaxAge || (len(found) == 0 && age > unknownKidWait) {
		s.fetched = time.Now()
		var set jose.JSONWebKeySet
		if s.err = s.fetch(&set); s.err == nil {
			s.set = set
		}
		found = s.set.Key(kid)
	}
	switch {
	case len(found) > 0:
		return &found[0], nil
	case s.err != nil:
		return nil, s.err
	default:
		return nil, fmt.Errorf("key %q is not in the gateway's key set", kid)
	}
}

func (s *keySet) fetch(set *jose.JSONWebKeySet) error {
	resp, err := s.client.Get(s.url)
	if err != nil {
		return fmt.Errorf("fetching the gateway's key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the gateway's key set %s: %s", s.url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, keySetLimit)).Decode(set); err != nil {
		return fmt.Errorf("reading the gateway's key set %s: %w", s.url, err)
	}
	return nil
}
