package config

import "time"

// Effective holds the totem timings actually used, derived in one place
// from the configured values and the node count (corosync's rules):
//
//	token            = token + (nodes − 2) · token_coefficient   (nodes ≥ 3)
//	token_retransmit = token / (token_retransmits_before_loss_const + 0.2)
//	hold             = 0.8 · token_retransmit
//	consensus        = 1.2 · token
//
// A derived value set explicitly in the file wins.
type Effective struct {
	Token                  time.Duration
	TokenRetransmit        time.Duration
	TokenRetransmitsBefore int
	Hold                   time.Duration
	Join                   time.Duration
	SendJoin               time.Duration
	Consensus              time.Duration
	Merge                  time.Duration
	Downcheck              time.Duration
	FailRecvConst          int
	SeqnoUnchangedConst    int
	MissCountConst         int
	WindowSize             int
	MaxMessages            int
	NetMTU                 int
}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// effectiveToken is the runtime token in ms.
func (c *Config) effectiveToken() int {
	tok := c.Totem.Token
	if n := len(c.Nodes); n > 2 {
		tok += (n - 2) * c.Totem.TokenCoefficient
	}
	return tok
}

// Effective computes the runtime timings.
func (c *Config) Effective() Effective {
	t := &c.Totem
	tok := c.effectiveToken()
	e := Effective{
		Token:                  ms(tok),
		TokenRetransmitsBefore: t.TokenRetransmitsBefore,
		Join:                   ms(t.Join),
		SendJoin:               ms(t.SendJoin),
		Merge:                  ms(t.Merge),
		Downcheck:              ms(t.Downcheck),
		FailRecvConst:          t.FailRecvConst,
		SeqnoUnchangedConst:    t.SeqnoUnchangedConst,
		MissCountConst:         t.MissCountConst,
		WindowSize:             t.WindowSize,
		MaxMessages:            t.MaxMessages,
		NetMTU:                 t.NetMTU,
	}
	if t.TokenRetransmit > 0 {
		e.TokenRetransmit = ms(t.TokenRetransmit)
	} else {
		e.TokenRetransmit = time.Duration(float64(e.Token) / (float64(t.TokenRetransmitsBefore) + 0.2))
	}
	if t.Hold > 0 {
		e.Hold = ms(t.Hold)
	} else {
		e.Hold = time.Duration(0.8 * float64(e.TokenRetransmit))
	}
	if t.Consensus > 0 {
		e.Consensus = ms(t.Consensus)
	} else {
		e.Consensus = time.Duration(1.2 * float64(e.Token))
	}
	return e
}

// Field is one effective value, named as in corosync's runtime.config.totem.*
// keys; timings are in milliseconds.
type Field struct {
	Name  string
	Value int64
}

// Fields lists the effective values in a stable order, for `ringd --check`,
// `ringctl status` and confdb's runtime.config.totem.* keys.
func (e Effective) Fields() []Field {
	m := func(d time.Duration) int64 { return d.Milliseconds() }
	return []Field{
		{"token", m(e.Token)},
		{"token_retransmit", m(e.TokenRetransmit)},
		{"token_retransmits_before_loss_const", int64(e.TokenRetransmitsBefore)},
		{"hold", m(e.Hold)},
		{"join", m(e.Join)},
		{"send_join", m(e.SendJoin)},
		{"consensus", m(e.Consensus)},
		{"merge", m(e.Merge)},
		{"downcheck", m(e.Downcheck)},
		{"fail_recv_const", int64(e.FailRecvConst)},
		{"seqno_unchanged_const", int64(e.SeqnoUnchangedConst)},
		{"miss_count_const", int64(e.MissCountConst)},
		{"window_size", int64(e.WindowSize)},
		{"max_messages", int64(e.MaxMessages)},
		{"netmtu", int64(e.NetMTU)},
	}
}
