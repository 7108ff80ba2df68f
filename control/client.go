package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/vpnlab/vpnlab/ike/status"
)

// Client talks to a Server. It is safe for concurrent use.
type Client struct {
	base string // "http://host:port" or "http://unix"
	hc   *http.Client
}

// Dial returns a client for addr, in the same syntax Serve accepts:
// "unix:/run/vpnlab/gw.sock" or "127.0.0.1:9500" (an "http://host:port" URL
// is accepted too). No connection is made until the first call; every call
// is bounded by its context only (the event stream is long-lived).
func Dial(addr string) *Client {
	tr := &http.Transport{
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
	}
	c := &Client{hc: &http.Client{Transport: tr}}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://unix"
		return c
	}
	if strings.HasPrefix(addr, "http://") {
		c.base = strings.TrimSuffix(addr, "/")
	} else {
		c.base = "http://" + addr
	}
	return c
}

// APIError is a non-2xx answer of the server.
type APIError struct {
	StatusCode int
	Message    string // the "error" field of the JSON body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("control API: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is makes a 404 for a tunnel match ErrUnknownTunnel.
func (e *APIError) Is(target error) bool {
	return target == ErrUnknownTunnel && e.StatusCode == http.StatusNotFound &&
		strings.Contains(e.Message, "unknown tunnel")
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp); err != nil {
		return err
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control API: decoding %s %s: %w", method, path, err)
	}
	return nil
}

func checkResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er ErrorResponse
	if json.Unmarshal(body, &er) != nil || er.Error == "" {
		er.Error = strings.TrimSpace(string(body))
	}
	return &APIError{StatusCode: resp.StatusCode, Message: er.Error}
}

func tunnelPath(name, action string) string {
	p := "/v1/tunnels/" + url.PathEscape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil)
}

// Status returns the whole engine status.
func (c *Client) Status(ctx context.Context) (status.Snapshot, error) {
	var st status.Snapshot
	err := c.do(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// Tunnel returns one tunnel's status; an unknown name gives an error matching
// ErrUnknownTunnel.
func (c *Client) Tunnel(ctx context.Context, name string) (status.Tunnel, error) {
	var t status.Tunnel
	err := c.do(ctx, http.MethodGet, tunnelPath(name, ""), &t)
	return t, err
}

// Initiate asks the engine to bring the tunnel up (asynchronous: watch Events
// or poll Tunnel for the result).
func (c *Client) Initiate(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, tunnelPath(name, "initiate"), nil)
}

// Terminate asks the engine to take the tunnel down.
func (c *Client) Terminate(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, tunnelPath(name, "terminate"), nil)
}

// Rekey asks for a rekey of phase 1 (ISAKMP SA) or phase 2 (IPsec SAs).
func (c *Client) Rekey(ctx context.Context, name string, phase int) error {
	return c.do(ctx, http.MethodPost, tunnelPath(name, "rekey")+"?phase="+strconv.Itoa(phase), nil)
}

// Events opens the event stream. The channel delivers events in the order
// the server sent them and is closed when ctx is cancelled, the server ends
// the stream (shutdown) or the connection fails. Events that happened before
// the call are not replayed.
func (c *Client) Events(ctx context.Context) (<-chan status.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	if err := checkResponse(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	ch := make(chan status.Event, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			var ev status.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
