package bgp

import (
	"slices"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/routes"
)

// The loop: one goroutine runs every closure posted to the speaker, in order,
// then decides and publishes the changes: logs at info and the OnChange
// subscribers. Routes reads the last published snapshot.

// Routes returns the current decision, sorted by prefix.
func (s *Speaker) Routes() []routes.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// OnChange registers fn to be called, on the speaker's goroutine and in
// order, with all routes and the changes every time the decision changes.
// fn must not block for long nor call AddStatic/RemoveStatic.
func (s *Speaker) OnChange(fn func([]routes.Route, []routes.Change)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// OnSession registers fn to be called on every session state change, with
// the same rules as OnChange. It runs before the route changes the state
// change causes are published.
func (s *Speaker) OnSession(fn func(SessionEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSession = append(s.onSession, fn)
}

// post hands f to the loop; false once the speaker is stopped.
func (s *Speaker) post(f func()) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.inbox <- f:
		return true
	case <-s.done:
		return false
	}
}

// call runs f on the loop and waits for it and for the decision it causes,
// so that Routes reflects f when call returns.
func (s *Speaker) call(f func() error) error {
	errc := make(chan error, 1)
	if !s.post(func() { err := f(); s.publish(); errc <- err }) {
		return ErrStopped
	}
	select {
	case err := <-errc:
		return err
	case <-s.loopDone:
		select {
		case err := <-errc:
			return err
		default:
			return ErrStopped
		}
	}
}

func (s *Speaker) loop() {
	defer close(s.loopDone)
	for {
		select {
		case f := <-s.inbox:
			f()
			s.publish()
		case <-s.done:
			// Run what was posted before Stop (its final withdrawals).
			for {
				select {
				case f := <-s.inbox:
					f()
				default:
					s.publish()
					return
				}
			}
		}
	}
}

// publish decides, logs the changes and tells the subscribers.
func (s *Speaker) publish() {
	rs, changes := s.table.Decide()
	if len(changes) == 0 {
		return
	}
	for _, c := range changes {
		s.logChange(c)
	}
	s.mu.Lock()
	s.routes = rs
	s.recent = append(s.recent, changes...)
	if s.changeN == nil {
		s.changeN = map[routes.ChangeKind]uint64{}
	}
	for _, c := range changes {
		s.changeN[c.Kind]++
	}
	if over := len(s.recent) - recentChanges; over > 0 {
		s.recent = slices.Delete(s.recent, 0, over)
	}
	subs := slices.Clone(s.onChange)
	s.mu.Unlock()
	for _, fn := range subs {
		fn(rs, changes)
	}
}

func (s *Speaker) logChange(c routes.Change) {
	f := logrus.Fields{"change": c.Kind.String()}
	if c.Prefix.IsValid() {
		f["prefix"] = c.Prefix.String()
	}
	if c.Tunnel != "" {
		f["tunnel"] = c.Tunnel
	}
	if c.From != nil {
		f["from"] = c.From
	}
	if c.To != nil {
		f["to"] = c.To
	}
	if c.Reason != "" {
		f["reason"] = c.Reason
	}
	e := s.log.WithFields(f)
	switch c.Kind {
	case routes.LimitExceeded:
		e.Warn("bgp: route limit exceeded")
	case routes.Updated:
		e.Debug("bgp: route updated")
	default:
		e.Info("bgp: route " + c.Kind.String())
	}
}

// limitDetail describes a limit event for the change log.
func (s *Speaker) limitDetail(n Neighbor) string {
	return "neighbor " + n.Peer.String() + " sent more than " + strconv.Itoa(s.cfg.RouteLimit) +
		" prefixes: NOTIFICATION Cease/Maximum Number of Prefixes Reached, session reset"
}
