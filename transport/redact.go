package transport

import (
	"net/url"
	"strings"
)

// redactURL returns urls, a NATS server URL or a comma-separated list of
// them, with only the scheme, host and port of each: user names, passwords
// and tokens (userinfo), paths, queries and fragments are dropped. An element
// that is not a URL with a scheme and a host is left out rather than echoed,
// so a malformed URL carrying a secret never leaks; a single such URL gives
// "". (Network.URL always has a scheme: nats.go adds one to a bare host:port.)
func redactURL(urls string) string {
	var out []string
	for s := range strings.SplitSeq(urls, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			continue
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return strings.Join(out, ",")
}
