package netlab

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into the network namespace nsName (a
// name under /run/netns, as created by `ip netns add` or Lab.AddNS; a path
// starting with "/" such as /proc/PID/ns/net is used as is) and returns fn's
// error. nsName "" means the current namespace: fn then simply runs on the
// calling goroutine.
//
// fn runs on a fresh goroutine locked to its OS thread; Do waits for it. The
// thread is switched back to its original namespace afterwards and unlocked.
// If switching back fails, or fn panics or calls runtime.Goexit, the thread is
// left locked so that the runtime discards it when the goroutine ends: no
// other goroutine ever runs in a namespace it did not ask for. A panic in fn
// is re-raised on the calling goroutine; a failure to switch back is joined to
// fn's error (fn's effects, e.g. sockets it created, stand).
//
// Sockets created inside fn belong to the namespace for their whole life and
// may be used from any goroutine after Do returns. Only the network
// namespace is switched: file system paths and everything else are the
// process's. fn should not start goroutines expecting them to run in the
// namespace (they do not).
func Do(nsName string, fn func() error) error {
	if nsName == "" {
		return fn()
	}
	path := nsName
	if !strings.HasPrefix(path, "/") {
		if strings.Contains(nsName, "/") || nsName == "." || nsName == ".." {
			return fmt.Errorf("netlab: bad namespace name %q", nsName)
		}
		path = "/run/netns/" + nsName
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("netlab: network namespace %s: %w", nsName, err)
	}
	defer target.Close()

	type outcome struct {
		err      error
		panicked bool
		panicVal any
	}
	ch := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		var o outcome
		returned := false
		defer func() {
			// Reached with returned == false only when fn panicked or
			// called runtime.Goexit. The thread stays locked (and is
			// therefore discarded): it is still in the target namespace.
			if !returned {
				if r := recover(); r != nil {
					o.panicked, o.panicVal = true, r
				} else {
					o.err = fmt.Errorf("netlab: Do(%s): fn exited its goroutine (runtime.Goexit)", nsName)
				}
			}
			ch <- o
		}()

		orig, err := netns.Get()
		if err != nil {
			returned = true
			runtime.UnlockOSThread()
			o.err = fmt.Errorf("netlab: current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			// setns(2) failed: the thread did not move.
			returned = true
			runtime.UnlockOSThread()
			o.err = fmt.Errorf("netlab: enter network namespace %s: %w", nsName, err)
			return
		}
		o.err = fn()
		returned = true
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: it dies with this goroutine.
			o.err = errors.Join(o.err, fmt.Errorf("netlab: leave network namespace %s: %w (thread discarded)", nsName, err))
			return
		}
		runtime.UnlockOSThread()
	}()
	o := <-ch
	if o.panicked {
		panic(o.panicVal)
	}
	return o.err
}

// Do runs fn in the namespace (see the package-level Do).
func (ns *NS) Do(fn func() error) error { return Do(ns.name, fn) }
