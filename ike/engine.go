package ike

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"
)

// Engine runs the IKEv1 control plane for a set of tunnels. (Skeleton: the
// implementation is being written; the exported API is fixed.)
type Engine struct {
	cfg  Config
	log  logrus.FieldLogger
	dp   DataPath
	klog KeyLogger
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the logger (default: logrus standard logger).
func WithLogger(l logrus.FieldLogger) Option { return func(e *Engine) { e.log = l } }

// WithDataPath sets where negotiated SAs go (default: a MemoryDataPath).
func WithDataPath(dp DataPath) Option { return func(e *Engine) { e.dp = dp } }

// WithKeyLogger enables key export.
func WithKeyLogger(k KeyLogger) Option { return func(e *Engine) { e.klog = k } }

// NewEngine validates cfg and returns an engine that has not bound sockets yet.
func NewEngine(cfg Config, opts ...Option) (*Engine, error) {
	e := &Engine{cfg: cfg, log: logrus.StandardLogger()}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Run binds the sockets, starts tunnels whose startup action is start, and
// serves until ctx is cancelled. It returns an error if a socket cannot be
// bound.
func (e *Engine) Run(ctx context.Context) error { return errors.New("not implemented") }

// Status returns a snapshot of every tunnel.
func (e *Engine) Status() Status { return Status{} }

// Subscribe returns a channel of events and a function that ends the
// subscription. Slow subscribers lose events (counted), never block the engine.
func (e *Engine) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event)
	return ch, func() {}
}

// Initiate starts phase 1 (if needed) and phase 2 of a tunnel.
func (e *Engine) Initiate(tunnel string) error { return errors.New("not implemented") }

// Terminate deletes a tunnel's IPsec SAs and ISAKMP SA, notifying the peer.
func (e *Engine) Terminate(tunnel string) error { return errors.New("not implemented") }

// Rekey rekeys phase 1 or phase 2 of a tunnel now.
func (e *Engine) Rekey(tunnel string, phase int) error { return errors.New("not implemented") }
