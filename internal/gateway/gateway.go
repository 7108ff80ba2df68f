// Package gateway is the main program shared by cmd/vgw and cmd/cgw: flags,
// configuration loading, logging, the IKE engine's lifetime and signals.
package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/capture"
	"github.com/vpnlab/vpnlab/control"
	"github.com/vpnlab/vpnlab/datapath"
	"github.com/vpnlab/vpnlab/gwconfig"
	"github.com/vpnlab/vpnlab/ike"
	"github.com/vpnlab/vpnlab/ike/status"
	"github.com/vpnlab/vpnlab/keylog"
)

// The control API and the key logger are reached through these variables so
// that tests can replace them; by default they are the real packages.

// ControlHook starts the control API on listen ("unix:/path" or a loopback
// "host:port") for eng. It opens its listener before returning, so that a
// bind failure is a startup error, then serves until ctx is cancelled; wait
// blocks until the server has stopped.
var ControlHook = func(ctx context.Context, listen string, eng control.Backend, log logrus.FieldLogger) (func() error, error) {
	ln, err := control.Listen(listen)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- control.NewServer(eng, log).ServeListener(ctx, ln) }()
	return func() error { return <-errc }, nil
}

// KeyLog is what KeyLogHook returns: the engine's key logger, closed at exit.
type KeyLog interface {
	status.KeyLogger
	io.Closer
}

// KeyLogHook opens the opt-in Wireshark key log at path.
var KeyLogHook = func(path string) (KeyLog, error) {
	w, err := keylog.Open(path)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ---------------------------------------------------------------------------

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // configuration error, bind failure, engine error
	ExitUsage = 2 // bad command line
)

// Main is the whole program of a gateway binary: it runs until SIGINT or
// SIGTERM and exits the process.
func Main(profile gwconfig.Profile, name string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// VPNLAB_CPUPROFILE=file writes a Go CPU profile of the whole run (for
	// performance work: go tool pprof BINARY file); %p in the name is
	// replaced by the process ID.
	if path := os.Getenv("VPNLAB_CPUPROFILE"); path != "" {
		path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	code := Run(ctx, profile, name, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if os.Getenv("VPNLAB_CPUPROFILE") != "" {
		pprof.StopCPUProfile()
	}
	os.Exit(code)
}

// options are the command-line flags.
type options struct {
	config    string
	logFormat string
	logLevel  string
	keyLog    string
	capture   string
	control   string
	events    string
	metrics   string
	check     bool
	set       map[string]bool
}

func parseFlags(name string, args []string, stderr io.Writer) (*options, int) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "configuration `file` (YAML; required)")
	fs.StringVar(&o.logFormat, "log-format", "", "log format: text, json or aws (overrides log.format)")
	fs.StringVar(&o.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides log.level)")
	fs.StringVar(&o.keyLog, "key-log", "", "export keys for Wireshark to `file` (overrides key_log; opt-in, secret material)")
	fs.StringVar(&o.capture, "capture", "", "write a pcap of the outside traffic to `file` (overrides capture)")
	fs.StringVar(&o.control, "control", "", "control API `address`: unix:/path or loopback host:port (overrides control.listen)")
	fs.StringVar(&o.events, "events", "", "append every engine event to `file` as JSON lines, from the start (the scenario runner reads it)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics alone on `address` (host:port or unix:/path), GET /metrics; the control API serves them too")
	fs.BoolVar(&o.check, "check", false, "validate the configuration, print the effective settings (without secrets) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s --config FILE [--check] [--log-format text|json|aws] [--log-level LEVEL] [--key-log FILE] [--capture FILE] [--control ADDR] [--events FILE] [--metrics ADDR]\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ExitOK
		}
		return nil, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		fs.Usage()
		return nil, ExitUsage
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.config == "" {
		fmt.Fprintf(stderr, "%s: --config is required\n", name)
		fs.Usage()
		return nil, ExitUsage
	}
	return o, -1
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if a == v {
			return true
		}
	}
	return false
}

// applyFlags overrides the configuration with the command-line flags.
func applyFlags(c *gwconfig.Config, o *options) error {
	if o.set["log-format"] {
		if !oneOf(o.logFormat, gwconfig.LogFormats) {
			return fmt.Errorf("--log-format: %q is not allowed (allowed: %s)", o.logFormat, strings.Join(gwconfig.LogFormats, ", "))
		}
		c.Log.Format = o.logFormat
	}
	if o.set["log-level"] {
		if !oneOf(o.logLevel, gwconfig.LogLevels) {
			return fmt.Errorf("--log-level: %q is not allowed (allowed: %s)", o.logLevel, strings.Join(gwconfig.LogLevels, ", "))
		}
		c.Log.Level = o.logLevel
	}
	if o.set["control"] {
		ctl, err := gwconfig.ParseControl(o.control)
		if err != nil {
			return fmt.Errorf("--control: %v", err)
		}
		c.Control = ctl
	}
	if o.set["key-log"] {
		c.KeyLog = o.keyLog
	}
	if o.set["capture"] {
		c.Capture = o.capture
	}
	return nil
}

// TimestampFormat is the log timestamp: RFC 3339 with milliseconds.
const TimestampFormat = "2006-01-02T15:04:05.000Z07:00"

// NewLogger returns a logrus logger writing to w in format ("text" or
// "json") at level ("debug", "info", "warn", "error").
func NewLogger(format, level string, w io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(w)
	switch format {
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: TimestampFormat})
	case "aws":
		l.SetFormatter(awsFormatter{})
	case "text", "":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: TimestampFormat})
	default:
		return nil, fmt.Errorf("unknown log format %q", format)
	}
	if level == "" {
		level = "info"
	}
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	l.SetLevel(lv)
	return l, nil
}

// Run is Main without the process: it parses args, loads the configuration
// and runs the engine until ctx is cancelled. It returns the exit code;
// errors go to stderr as one line each, without stack traces.
func Run(ctx context.Context, profile gwconfig.Profile, name string, args []string, stdout, stderr io.Writer) int {
	o, code := parseFlags(name, args, stderr)
	if o == nil {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, a...))
		return ExitError
	}

	c, code := loadConfig(o, profile, name, stderr)
	if c == nil {
		return code
	}
	if err := applyFlags(c, o); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitUsage
	}

	if o.check {
		fmt.Fprint(stdout, c.Summary())
		fmt.Fprintf(stdout, "%s: configuration OK\n", o.config)
		return ExitOK
	}

	logger, err := NewLogger(c.Log.Format, c.Log.Level, stderr)
	if err != nil {
		return fail("%v", err)
	}
	log := logger.WithField("gw", name)
	for _, w := range c.Warnings {
		log.Warn(w.String())
	}
	log.WithFields(logrus.Fields{"profile": c.Profile.String(), "config": o.config, "tunnels": len(c.IKE.Tunnels),
		"ike_port": c.IKE.Ports.IKE, "natt_port": c.IKE.Ports.NATT, "control": c.Control.String()}).Info("starting")
	logTunnels(log, c)

	opts, sink, closeOutputs, err := outputs(c, log)
	if err != nil {
		return fail("%v", err)
	}
	defer closeOutputs()
	var dp *datapath.DataPath
	if c.DataPath != nil {
		var stop func()
		dp, stop, err = startDataPath(c, sink, log)
		if err != nil {
			return fail("%v", err)
		}
		defer stop()
		opts = append(opts, ike.WithDataPath(dp), ike.WithSocketMark(datapath.OutsideMark))
	}

	eng, err := ike.NewEngine(c.IKE, opts...)
	if err != nil {
		return fail("%v", err)
	}

	if o.events != "" {
		stopEvents, err := writeEvents(eng, o.events)
		if err != nil {
			return fail("--events: %v", err)
		}
		defer stopEvents()
	}

	if c.Log.Format == "aws" {
		defer followAWSStates(c, logger, eng)()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	be := backend{Engine: eng}
	if routingWanted(c) {
		r, err := startRouting(ctx, c, dp, eng, log)
		if err != nil {
			return fail("%v", err)
		}
		defer r.stop()
		be.r = r
	}
	controlDone, err := startControl(ctx, cancel, c, be, log)
	if err != nil {
		return fail("%v", err)
	}

	var metricsWait func() error
	if o.metrics != "" {
		metricsWait, err = startMetrics(ctx, o.metrics, be, log.WithField("component", "metrics"))
		if err != nil {
			return fail("--metrics %s: %v", o.metrics, err)
		}
	}

	runErr, ctlErr, interrupted := serve(ctx, cancel, eng, controlDone, metricsWait, log)
	switch {
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		return fail("%v", runErr)
	case ctlErr != nil && !errors.Is(ctlErr, context.Canceled):
		return fail("control API: %v", ctlErr)
	}
	if interrupted {
		log.Info("stopped")
	}
	return ExitOK
}

// loadConfig reads and checks the configuration; on an error it has
// printed it and returns nil and the exit code.
func loadConfig(o *options, profile gwconfig.Profile, name string, stderr io.Writer) (*gwconfig.Config, int) {
	c, err := gwconfig.Load(o.config, profile)
	if err != nil {
		var el gwconfig.ErrorList
		if errors.As(err, &el) {
			for _, e := range el {
				fmt.Fprintf(stderr, "%s: %s\n", name, e)
			}
			if len(el) > 1 {
				fmt.Fprintf(stderr, "%s: %d errors in %s\n", name, len(el), o.config)
			}
			return nil, ExitError
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, ExitError
	}
	return c, ExitOK
}

// logTunnels logs each tunnel's configuration and routing at start.
func logTunnels(log logrus.FieldLogger, c *gwconfig.Config) {
	for i := range c.IKE.Tunnels {
		t := &c.IKE.Tunnels[i]
		log.WithField("tunnel", t.Name).Info("configured: " + gwconfig.DescribeTunnel(t))
		if i < len(c.Tunnels) {
			log.WithField("tunnel", t.Name).Info("routing: " + c.Tunnels[i].Describe())
		}
	}
}

// outputs opens what the engine writes besides its log: the key log (a
// Wireshark key export, opt-in) and the capture. closeAll closes what was
// opened; on an error nothing is left open.
func outputs(c *gwconfig.Config, log logrus.FieldLogger) (opts []ike.Option, sink *capture.Writer, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	opts = []ike.Option{ike.WithLogger(log)}
	if c.KeyLog != "" {
		if KeyLogHook == nil {
			log.WithField("key_log", c.KeyLog).Warn("key log requested but this build has no key logger; not exporting keys")
		} else {
			kl, err := KeyLogHook(c.KeyLog)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("key log: %w", err)
			}
			closers = append(closers, func() {
				if err := kl.Close(); err != nil {
					log.WithError(err).Warn("closing the key log")
				}
			})
			log.WithField("key_log", c.KeyLog).Warn("exporting IKE and ESP keys for Wireshark: anyone who reads this file can decrypt the traffic")
			opts = append(opts, ike.WithKeyLogger(kl))
		}
	}
	if c.Capture != "" {
		sink, err = capture.Create(c.Capture)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		closers = append(closers, func() {
			if err := sink.Close(); err != nil {
				log.WithError(err).Warn("closing the capture")
			}
		})
		log.WithField("capture", c.Capture).Info("writing a pcap of the outside traffic")
		opts = append(opts, ike.WithPacketSink(sink))
	}
	return opts, sink, closeAll, nil
}

// startControl starts the control API when the configuration asks for
// it. The returned channel (nil without an API) gets its end; an API that
// stops by itself cancels the gateway.
func startControl(ctx context.Context, cancel context.CancelFunc, c *gwconfig.Config, be backend, log logrus.FieldLogger) (chan error, error) {
	if !c.Control.Enabled() {
		return nil, nil
	}
	if ControlHook == nil {
		log.WithField("control", c.Control.String()).Warn("control API requested but this build has none; not listening")
		return nil, nil
	}
	wait, err := ControlHook(ctx, c.Control.String(), be, log.WithField("component", "control"))
	if err != nil {
		return nil, fmt.Errorf("control API on %s: %w", c.Control, err)
	}
	log.WithField("control", c.Control.String()).Info("control API listening")
	controlDone := make(chan error, 1)
	go func() {
		err := wait()
		if err != nil && ctx.Err() == nil {
			log.WithError(err).Error("control API stopped; shutting down")
			cancel()
		}
		controlDone <- err
	}()
	return controlDone, nil
}

// followAWSStates gives the log AWS's format, whose fields need each
// tunnel's phase states, followed from the engine's events; the returned
// function ends the subscription.
func followAWSStates(c *gwconfig.Config, logger *logrus.Logger, eng *ike.Engine) (unsubscribe func()) {
	states := newAWSTunnelStates(c)
	logger.SetFormatter(awsFormatter{states: states})
	evs, unsub := eng.Subscribe()
	states.attach(evs)
	go states.follow()
	return unsub
}

// serve runs the engine until ctx ends, then stops the control API and
// the metrics server and returns what ended each.
func serve(ctx context.Context, cancel context.CancelFunc, eng *ike.Engine, controlDone chan error, metricsWait func() error, log logrus.FieldLogger) (runErr, ctlErr error, interrupted bool) {
	runErr = eng.Run(ctx)
	interrupted = ctx.Err() != nil
	cancel()
	if controlDone != nil {
		ctlErr = <-controlDone
	}
	if metricsWait != nil {
		if err := metricsWait(); err != nil {
			log.WithError(err).Warn("metrics server")
		}
	}
	return runErr, ctlErr, interrupted
}

// startRouting starts BGP or the static routes of the configuration; the
// caller stops them.
func startRouting(ctx context.Context, c *gwconfig.Config, dp *datapath.DataPath, eng *ike.Engine, log logrus.FieldLogger) (*routing, error) {
	if dp == nil {
		log.Warn("routing (BGP or static routes) is configured but there is no data_path: routes are decided and reported, but carry no traffic")
	}
	r, err := newRouting(c, dp, log)
	if err != nil {
		return nil, err
	}
	if err := r.start(ctx, eng); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}
