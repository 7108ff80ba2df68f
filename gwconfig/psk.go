package gwconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vpnlab/vpnlab/ike/policy"
)

// pskRE is AWS's pre-shared key rule: 8-64 characters of [A-Za-z0-9._],
// not starting with 0.
var pskRE = regexp.MustCompile(`^[A-Za-z0-9._]{8,64}$`)

// CheckAWSPSK reports whether psk follows AWS's rules for a pre-shared key:
// 8-64 characters from A-Z a-z 0-9 . _, not starting with 0. The error never
// contains the key.
func CheckAWSPSK(psk []byte) error {
	switch {
	case len(psk) < 8:
		return fmt.Errorf("pre-shared key is too short (AWS: 8-64 characters)")
	case len(psk) > 64:
		return fmt.Errorf("pre-shared key is too long (AWS: 8-64 characters)")
	case !pskRE.Match(psk):
		return fmt.Errorf("pre-shared key has characters other than A-Z a-z 0-9 . _ (AWS rule)")
	case psk[0] == '0':
		return fmt.Errorf("pre-shared key starts with 0 (AWS rule)")
	}
	return nil
}

// psk reads the pre-shared key from psk_file or psk_env. No message names
// the key itself.
func (b *tunnelDecoder) psk(o *object, base string) policy.Secret {
	fn, hasFile := o.scalar("psk_file")
	en, hasEnv := o.scalar("psk_env")
	var psk []byte
	var where *yaml.Node
	var wherePath string
	switch {
	case hasFile && hasEnv:
		b.d.errf(en, o.p("psk_env"), "set either psk_file or psk_env, not both")
		return nil
	case !hasFile && !hasEnv:
		b.d.errf(o.node, o.path, "a pre-shared key is required: set psk_file or psk_env")
		return nil
	case hasFile:
		where, wherePath = fn, o.p("psk_file")
		p := fn.Value
		if p == "" {
			b.d.errf(fn, wherePath, "empty path")
			return nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.d.errf(fn, wherePath, "cannot read the pre-shared key: %v", unwrapPathError(err, p))
			return nil
		}
		if strings.HasSuffix(string(data), "\r\n") {
			data = data[:len(data)-2]
		} else if strings.HasSuffix(string(data), "\n") {
			data = data[:len(data)-1]
		}
		psk = data
		if len(psk) == 0 {
			b.d.errf(fn, wherePath, "%s is empty", p)
			return nil
		}
	default:
		where, wherePath = en, o.p("psk_env")
		v, ok := os.LookupEnv(en.Value)
		if !ok || en.Value == "" {
			b.d.errf(en, wherePath, "environment variable %q is not set", en.Value)
			return nil
		}
		if v == "" {
			b.d.errf(en, wherePath, "environment variable %q is empty", en.Value)
			return nil
		}
		psk = []byte(v)
	}
	if err := CheckAWSPSK(psk); err != nil {
		if b.vgw {
			b.d.errf(where, wherePath, "%v", err)
			return nil
		}
		b.d.warnf(where, wherePath, "%v: an AWS virtual private gateway would refuse it", err)
	}
	return policy.Secret(psk)
}

// unwrapPathError keeps the OS reason ("no such file or directory") with the
// path, whatever the error type.
func unwrapPathError(err error, path string) string {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Sprintf("%s: %v", path, pe.Err)
	}
	return err.Error()
}
