package transport

// DADRetries is how many times listen has waited for a tentative IPv6
// address so far.
func DADRetries() int64 { return dadRetries.Load() }
