// Package ring is the driver of the Totem ring: it runs one pure protocol
// processor (totem/srp) with a transport (totem/transport), a clock, the
// datagram envelope (totem/crypto) and packing/fragmentation (totem/pg), and
// hands the ordered output to the executive through totem.Events.
//
// # Goroutines
//
//	caller goroutines ──Send──▶ packer (bounded) ┐
//	                                            ▼
//	reader (one per socket) ──decrypt──▶ rx ──▶ Run goroutine ──▶ Processor
//	                                            │   Step/Tick/Send, Ready:
//	                                            │   persist seq (fsync),
//	                                            │   seal + sendmmsg,
//	                                            └── pg reassembly ──▶ Events
//
// Send packs each message straight into the frame that will carry it (one
// copy, under the queue's mutex). One goroutine at a time touches the
// Processor and the reassembler and calls Events, in order: whoever holds
// runMu. That is Run, except when Run is idle: then a caller's Flush
// (after SendBatched) and a reader with a freshly received batch
// (stepInline) do the same work on their own goroutine instead of handing
// it to Run, because on a lightly loaded node each hand-off is a thread
// wake-up that costs more than the work (flush.go). Readers receive and
// open (authenticate and decrypt in place) datagrams, so under load crypto
// runs in parallel with the protocol on a second core; datagrams that fail
// authentication are counted and never reach the Processor. Timers are
// Run's alone.
//
// # One iteration of Run
//
//  1. Wait for received datagrams, the timer, a Send or a Leave.
//  2. Step every datagram that has arrived (all pending batches, up to a
//     bound), before any timer fires: a token sitting in a receive queue
//     must never be declared lost because the loop woke up late on a busy
//     machine.
//  3. Tick if the Processor's deadline has passed.
//  4. Move the packed frames into Processor.Send until it says
//     ErrTryAgain (a partly filled frame is closed when no other waits).
//  5. Take Ready: write PersistSeq to StateDir and fsync (before any
//     datagram of that Ready leaves, so a restarted node never reuses a
//     ring ID); seal every datagram and send them in one batch; then pass
//     the events through pg to Events. Datagrams go out before events are
//     delivered, so the token is forwarded without waiting for the
//     application's callbacks — except for a Ready with a few message
//     deliveries only (a lightly loaded ring): those go first, so the
//     local client gets its message back before the other nodes wake up
//     and compete for the CPU (deliverFirst).
//  6. Re-arm the single timer at the Processor's deadline.
//
// # Frame budget
//
// One Totem message must fit one Ethernet frame, so pg frames are at most
//
//	NetMTU − 28 (IPv4 + UDP headers) − crypto overhead (46 with an AEAD:
//	30-byte header and 16-byte tag; 30 with none) − wire.McastOverhead
//	(52: srp header incl. recovery fields)
//
// which is 1374 bytes with netmtu 1500 and aes256; an IPv6 link's header
// is 40 bytes, so with one the frames are 20 bytes smaller (1354:
// frameBudget asks the transport's IPHeader). FrameBudget computes it;
// it is passed to srp as MaxPayload and to the packer. With netmtu 0 (the
// default) the datagram size is the MTU of the interface holding the ring
// address — 1500 on Ethernet, so no IP fragmentation, and 65535 on
// loopback, where a 64 KiB frame costs little more than a 1.4 KiB one and
// a 40 KB message travels in one datagram instead of 29 — capped so that
// two windows of frames fit the receive buffer the kernel granted
// (autoMTU). A larger netmtu than the path's MTU makes the kernel fragment:
// it works, but one lost fragment loses the whole frame.
//
// The Processor runs with srp.Config.ReuseDatagrams: output seals and sends
// a Ready's datagrams before it asks for the next, so the Processor writes
// each batch over the previous one instead of allocating (and zeroing) up
// to a megabyte per token visit.
//
// # Scheduling
//
// The token must move within the token timeout (200 ms in low-latency
// deployments) even on a saturated machine. Against other processes the
// kernel's fair scheduler is enough. Against busy goroutines in the same
// process it is not: Go runs a goroutine woken by the network only when a P
// is free, so with GOMAXPROCS CPU-bound goroutines each hop (reader, Run)
// can wait several 10 ms preemption slices and the token is lost. A daemon
// that runs CPU-heavy work next to the ring should therefore set
// GOMAXPROCS well above the core count (ringd: max(NumCPU, 4) + 4 is what
// TestNoFalseFailuresUnderLoad checks) or bound that work itself.
// Before a timer fires, Run also asks the transport whether datagrams are
// still waiting in the kernel (SIOCINQ) and steps them first, waiting up to
// 20 ms for a descheduled reader: a token that did arrive is never declared
// lost because its reader had not run yet.
//
// # Counters
//
// Counters combines the Processor's (retransmits, token losses, gathers,
// rotations, malformed) with the driver's: DatagramsIn/Out count datagrams
// received from and handed to the network (a udpu broadcast to n nodes is n
// datagrams) and BytesIn/Out their sealed size (BytesOut as the
// transport counts it: transport.ByteCounter), MessagesIn/Out count
// application messages (after reassembly / before packing), and Malformed
// adds pg frames that did not decode. Status also carries the levels of
// flow control (totem.Backlog): the send queue (messages and bytes not yet
// taken by the Processor), the Processor's frames waiting for the token,
// and the ring-wide backlog the token carried.
// Datagrams dropped before the Processor saw them are counted by reason:
// AuthFailures, Replayed, UnknownNode, BadAddress, OutOfRange (plus srp's)
// and Malformed (plus srp's and pg's); see filter.go for the checks and
// their order.
//
// # Receive filter and epochs
//
// Every datagram passes the receive filter in its reader goroutine
// (filter.go): nodelist, source address, envelope authentication and
// replay window, sender consistency; then srp's range checks in Run.
// Rejections are logged at most once per reason every 10 s, with a count.
// The envelope's epoch (crypto.NewEpoch) is stored in StateDir/epoch.<node>
// (like the ring seq: write, fsync, rename, fsync) by New, before anything
// is sealed.
package ring
