// Package libreswan finds Libreswan's programs (addconn, algparse, pluto)
// for tests. Debian 12's libreswan package conflicts with strongSwan's
// (strongswan-charon, strongswan-libcharon, strongswan-starter), so it is
// not installed: the programs come from the package extracted with
// dpkg-deb -x, at $VPNLAB_LIBRESWAN_ROOT (.ci/run prepares it), else in
// $TMPDIR/vpnlab-libreswan, fetched once with `apt-get download libreswan`.
// An installed Libreswan (/usr/libexec/ipsec/addconn) is used as it is.
package libreswan

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ErrNotAvailable is returned (wrapped) when the programs cannot be found
// or fetched.
var ErrNotAvailable = errors.New("Libreswan not available")

var (
	once    sync.Once
	rootDir string
	rootErr error
)

// Root returns the directory under which usr/libexec/ipsec holds the
// programs ("/" for an installed Libreswan).
func Root() (string, error) {
	once.Do(func() { rootDir, rootErr = find() })
	return rootDir, rootErr
}

// Bin returns the path of a program in usr/libexec/ipsec (e.g. "addconn").
func Bin(name string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "usr/libexec/ipsec", name), nil
}

func find() (string, error) {
	if _, err := os.Stat("/usr/libexec/ipsec/addconn"); err == nil {
		return "/", nil
	}
	root := os.Getenv("VPNLAB_LIBRESWAN_ROOT")
	if root != "" {
		if _, err := os.Stat(filepath.Join(root, "usr/libexec/ipsec/addconn")); err != nil {
			return "", fmt.Errorf("%w: VPNLAB_LIBRESWAN_ROOT=%s has no usr/libexec/ipsec/addconn", ErrNotAvailable, root)
		}
		return root, nil
	}
	root = filepath.Join(os.TempDir(), "vpnlab-libreswan")
	if _, err := os.Stat(filepath.Join(root, "usr/libexec/ipsec/addconn")); err == nil {
		return root, nil
	}
	if err := extract(root); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotAvailable, err)
	}
	return root, nil
}

// extract fetches the package with apt-get download and unpacks it into
// root: into a temporary directory beside it first, renamed into place, so
// that test binaries running at the same time never see half a tree (the
// one that loses the rename uses the winner's).
func extract(root string) error {
	dl, err := os.MkdirTemp(filepath.Dir(root), "vpnlab-libreswan-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("apt-get", "download", "libreswan")
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download libreswan: %v: %s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "libreswan_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download libreswan: %d .deb files", len(debs))
	}
	tree := filepath.Join(dl, "tree")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], tree).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, out)
	}
	if err := os.Rename(tree, root); err != nil {
		if _, serr := os.Stat(filepath.Join(root, "usr/libexec/ipsec/addconn")); serr == nil {
			return nil // another test binary was first
		}
		return err
	}
	return nil
}
