package controld

import "time"

var testNow = time.Unix(1_700_000_000, 0)
