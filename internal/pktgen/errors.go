package pktgen

import (
	"errors"
	"fmt"
)

// ConfigError is a bad SendConfig or RecvConfig (a usage error of the caller).
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErr(format string, args ...any) error {
	return &ConfigError{msg: fmt.Sprintf(format, args...)}
}

// IsConfigError says whether err is a bad configuration.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}
