package transport

import "github.com/mosaik-go/mosaik/internal/lat"

// Temporary latency probes (issue 15 profiling).
var (
	stAESend      = lat.Step("t.AE send (entries)")
	stAESent      = lat.Step("t.AE send returned")
	stAERecv      = lat.Step("t.AE recv (entries)")
	stAEResponded = lat.Step("t.AE responded")
	stAERespRecv  = lat.Step("t.AE resp recv at leader")
	stNoticeSend  = lat.Step("t.notice send")
	stNoticeRecv  = lat.Step("t.notice recv")
	stNoticeResp  = lat.Step("t.notice responded")
)
