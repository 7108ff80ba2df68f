package ike

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vpnlab/vpnlab/ike/dh"
	"github.com/vpnlab/vpnlab/ike/isakmp"
	"github.com/vpnlab/vpnlab/ike/keymat"
)

// saState is where a phase 1 negotiation stands.
type saState int

const (
	stateMM1Sent saState = iota // initiator: MM1 sent, waiting for MM2
	stateMM3Sent                // initiator: MM3 sent
	stateMM5Sent                // initiator: MM5 sent
	stateMM2Sent                // responder: MM2 sent, waiting for MM3
	stateMM4Sent                // responder: MM4 sent, waiting for MM5
	stateAM1Sent                // initiator: AM1 sent
	stateAM2Sent                // responder: AM2 sent, waiting for AM3
	stateEstablished
	stateDeleted
)

func (s saState) String() string {
	return [...]string{"MM1_SENT", "MM3_SENT", "MM5_SENT", "MM2_SENT", "MM4_SENT", "AM1_SENT", "AM2_SENT", "ESTABLISHED", "DELETED"}[s]
}

// ikeSA is one ISAKMP SA (phase 1), owned by the engine loop.
type ikeSA struct {
	e         *Engine
	t         *tunnel // nil while a responder has not matched a tunnel
	initiator bool
	exchange  ExchangeMode
	state     saState
	iCookie   [8]byte
	rCookie   [8]byte
	local     netip.AddrPort // current local socket (500, or 4500 after the float)
	remote    netip.AddrPort
	created   time.Time
	halfOpen  bool // counted in Engine.halfOpen (halfopen.go)
	// halfOpenPeer: the address the half-open count is held for.
	halfOpenPeer netip.Addr

	// Negotiation.
	saiB     []byte // the initiator's SA payload body, as sent (HASH_I/HASH_R)
	idiB     []byte // aggressive mode: the initiator's ID body
	replySA  *isakmp.SA
	chosen   Phase1Proposal
	lifetime time.Duration
	dhKey    dh.Key
	gxi, gxr []byte
	ni, nr   []byte

	// NAT-T (RFC 3947).
	nattVersion     nattVersion // negotiated through vendor IDs
	peerDPD         bool
	localBehindNAT  bool
	remoteBehindNAT bool
	floated         bool

	// Keys.
	hash        crypto.Hash
	skeyid      []byte
	skeyidD     []byte
	skeyidA     []byte
	skeyidE     []byte
	encKey      []byte
	block       cipher.Block
	phase1IV    []byte // IV chain of phase 1 messages
	lastP1Block []byte // last CBC block of phase 1, seed of phase 2 IVs
	established time.Time
	expires     time.Time

	// Reliability: the last message we sent in phase 1 and a digest of the
	// last one we received, to answer duplicates with the cached reply.
	out        outbox
	lastInHash [32]byte
	// firstInHash: a responder's digest of the first message, to tell its
	// retransmission (answered from the cache) from a new message that
	// reuses the initiator cookie (dropped).
	firstInHash [32]byte

	// Phase 2 and informational exchanges by message ID.
	quick         map[uint32]*quickMode
	ivs           map[uint32][]byte // IV chain per informational/quick message ID
	seenInfoOrder []uint32          // informational message IDs seen, oldest first, at most seenInfoKept
	infoSent      int               // informational messages we sent (impairments count them)
	usedQuick     usedIDs           // quick mode message IDs used, bounded (qmreplay.go)

	timers struct {
		halfOpen *time.Timer
		rekey    *time.Timer
		expire   *time.Timer
	}
	dpdSeq uint32
	// collided: this SA survived a phase 1 collision (phase1collision.go),
	// so a later INITIAL-CONTACT on it is not a restarted peer.
	collided bool

	// Error notifies (phase1notify.go): the first unauthenticated one during
	// phase 1 and how many retransmissions we had sent then; peerConfirmed:
	// the peer has shown it accepted phase 1 (sent MM6/AM3, or any
	// authenticated message since).
	unauthNotify  isakmp.NotifyType
	unauthTries   int
	peerConfirmed bool
}

func (sa *ikeSA) logger() logrus.FieldLogger {
	f := logrus.Fields{"icookie": hex.EncodeToString(sa.iCookie[:]), "peer": sa.remote.String()}
	if sa.t != nil {
		f["tunnel"] = sa.t.cfg.Name
	}
	return sa.e.log.WithFields(f)
}

func (sa *ikeSA) tunnelName() string {
	if sa.t == nil {
		return ""
	}
	return sa.t.cfg.Name
}

// role names our part in this SA.
func (sa *ikeSA) role() string {
	if sa.initiator {
		return "initiator"
	}
	return "responder"
}

// deriveKeys computes SKEYID and friends once both nonces and g^xy are known
// (RFC 2409 section 5), the encryption key (appendix B) and the first IV.
func (sa *ikeSA) deriveKeys(gxy []byte) error {
	h := sa.chosen.Hash
	sa.hash = h
	sa.skeyid = sa.t.auth.SKEYID(h, sa.ni, sa.nr, gxy) // the method decides (auth.go)
	k := keymat.DerivePhase1(h, sa.skeyid, gxy, sa.iCookie[:], sa.rCookie[:])
	sa.skeyidD, sa.skeyidA, sa.skeyidE = k.D, k.A, k.E
	sa.encKey = keymat.EncryptionKey(h, sa.skeyidE, sa.chosen.EncKeyBits/8)
	b, err := aes.NewCipher(sa.encKey)
	if err != nil {
		return err
	}
	sa.block = b
	sa.phase1IV = keymat.Phase1IV(h, sa.gxi, sa.gxr, aes.BlockSize)
	sa.lastP1Block = sa.phase1IV
	return nil
}

// encrypt pads plain with zeros to the block size and CBC-encrypts it with iv.
// It returns the ciphertext; the new IV is its last block.
func (sa *ikeSA) encrypt(iv, plain []byte) []byte {
	bs := sa.block.BlockSize()
	pad := (bs - len(plain)%bs) % bs
	buf := make([]byte, len(plain)+pad)
	copy(buf, plain)
	cipher.NewCBCEncrypter(sa.block, iv).CryptBlocks(buf, buf)
	return buf
}

var errDecrypt = errors.New("encrypted body is not a multiple of the cipher block size")

func (sa *ikeSA) decrypt(iv, ct []byte) ([]byte, error) {
	bs := sa.block.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, errDecrypt
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(sa.block, iv).CryptBlocks(out, ct)
	return out, nil
}

func lastBlock(b []byte, bs int) []byte { return append([]byte(nil), b[len(b)-bs:]...) }

// messageIV returns the current IV for an exchange with message ID mid
// (RFC 2409 appendix B): the first one is hash(last phase-1 block | M-ID).
func (sa *ikeSA) messageIV(mid uint32) []byte {
	if iv, ok := sa.ivs[mid]; ok {
		return iv
	}
	iv := keymat.MessageIV(sa.hash, sa.lastP1Block, mid, aes.BlockSize)
	sa.ivs[mid] = iv
	return iv
}

// sealPhase1 encrypts a phase 1 message (MM5/MM6, encrypted AM3) and
// advances the phase 1 IV chain.
func (sa *ikeSA) sealPhase1(h isakmp.Header, ps []isakmp.Payload) ([]byte, error) {
	first, body, err := isakmp.EncodePayloads(ps)
	if err != nil {
		return nil, err
	}
	ct := sa.encrypt(sa.phase1IV, body)
	sa.phase1IV = lastBlock(ct, aes.BlockSize)
	sa.lastP1Block = sa.phase1IV
	h.NextPayload = first
	h.Flags |= isakmp.FlagEncryption
	m := &isakmp.Message{Header: h, Body: ct}
	return m.Encode()
}

// openPhase1 decrypts a phase 1 message body and advances the IV chain only
// if the payloads decode (a wrong PSK leaves the state unchanged).
func (sa *ikeSA) openPhase1(m *isakmp.Message) ([]isakmp.Payload, []byte, error) {
	plain, err := sa.decrypt(sa.phase1IV, m.Body)
	if err != nil {
		return nil, nil, err
	}
	ps, err := isakmp.DecodePayloads(m.Header.NextPayload, plain, isakmp.HeaderLen)
	if err != nil {
		return nil, nil, err
	}
	sa.phase1IV = lastBlock(m.Body, aes.BlockSize)
	sa.lastP1Block = sa.phase1IV
	return ps, plain, nil
}

// sealExchange encrypts a message of a phase 2 / informational exchange.
func (sa *ikeSA) sealExchange(h isakmp.Header, body []byte, first isakmp.PayloadType) ([]byte, error) {
	iv := sa.messageIV(h.MessageID)
	ct := sa.encrypt(iv, body)
	sa.ivs[h.MessageID] = lastBlock(ct, aes.BlockSize)
	h.NextPayload = first
	h.Flags |= isakmp.FlagEncryption
	m := &isakmp.Message{Header: h, Body: ct}
	return m.Encode()
}

// openExchange decrypts a phase 2 / informational message. commit decides
// whether the IV chain advances (callers commit once the HASH verified).
func (sa *ikeSA) openExchange(m *isakmp.Message) (plain []byte, commit func(), err error) {
	iv := sa.messageIV(m.Header.MessageID)
	plain, err = sa.decrypt(iv, m.Body)
	if err != nil {
		return nil, nil, err
	}
	next := lastBlock(m.Body, aes.BlockSize)
	return plain, func() { sa.ivs[m.Header.MessageID] = next }, nil
}

// header returns a header for this SA.
func (sa *ikeSA) header(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{ICookie: sa.iCookie, RCookie: sa.rCookie, Version: isakmp.Version, Exchange: ex, MessageID: mid}
}

// chainAfterFirst returns the bytes of the payload chain that follows the
// first payload (the HASH), up to the end of the last payload, excluding any
// encryption padding. It works on the raw decrypted body so the HASH covers
// exactly what the peer sent.
func chainAfterFirst(body []byte) ([]byte, error) {
	if len(body) < 4 {
		return nil, errors.New("body too short for a payload")
	}
	first := int(binary.BigEndian.Uint16(body[2:4]))
	off := 0
	next := byte(1)
	for next != 0 {
		if off+4 > len(body) {
			return nil, fmt.Errorf("payload header past end at %d", off)
		}
		next = body[off]
		l := int(binary.BigEndian.Uint16(body[off+2 : off+4]))
		if l < 4 || off+l > len(body) {
			return nil, fmt.Errorf("bad payload length %d at %d", l, off)
		}
		off += l
	}
	if first > off {
		return nil, errors.New("bad first payload length")
	}
	return body[first:off], nil
}

func newMessageID() uint32 {
	for {
		b := randomBytes(4)
		if id := binary.BigEndian.Uint32(b); id != 0 {
			return id
		}
	}
}

// cookiesSPI is the 16-byte ISAKMP SPI: CKY-I | CKY-R.
func (sa *ikeSA) cookiesSPI() []byte {
	return append(append([]byte(nil), sa.iCookie[:]...), sa.rCookie[:]...)
}
