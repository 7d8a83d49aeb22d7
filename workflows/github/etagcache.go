package github

import (
	"container/list"
	"sync"
)

// cachedAnswer is the last 200 answer of a GET: its ETag, its raw body and
// the next page it linked to (a 304 may carry no Link header).
type cachedAnswer struct {
	etag     string
	body     []byte
	nextPage int
}

// etagCache keeps the last answer per URL for conditional requests, evicting
// the least recently used URL beyond its capacity. Entries are never mutated
// after insertion, so readers may keep them.
type etagCache struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // front = most recently used; values are *etagEntry
	byURL    map[string]*list.Element
}

type etagEntry struct {
	url    string
	answer *cachedAnswer
}

func newETagCache(capacity int) *etagCache {
	return &etagCache{capacity: capacity, order: list.New(), byURL: make(map[string]*list.Element)}
}

func (c *etagCache) get(url string) (*cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byURL[url]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*etagEntry).answer, true
}

func (c *etagCache) put(url string, answer *cachedAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byURL[url]; ok {
		el.Value.(*etagEntry).answer = answer
		c.order.MoveToFront(el)
		return
	}
	c.byURL[url] = c.order.PushFront(&etagEntry{url: url, answer: answer})
	for c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byURL, oldest.Value.(*etagEntry).url)
	}
}

func (c *etagCache) remove(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byURL[url]; ok {
		c.order.Remove(el)
		delete(c.byURL, url)
	}
}

func (c *etagCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
