package lrmd

// DropEnds closes this process's ends of the agent's stdin and of the
// guard's pipe without a word, as the kernel does when ringd dies (the
// agent's stdin first: the order that would let it run soonest).
func (s *Started) DropEnds() {
	_ = s.stdin.Close()
	_ = s.goPipe.Close()
}
