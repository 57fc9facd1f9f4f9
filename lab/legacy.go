package lab

import (
	"github.com/wirelab/wirelab/results"
)

// results knows no transport names; a results file written before runs said their carrier and
// delivery (results.json before issue 13) gets them from the table, through results.Legacy.
// Every reader of results files in this repository (lab run, lab compare, lab history) links
// this package.
func init() { results.Legacy = legacyFacts }

// legacyFacts is what a transport's name says of its carrier and delivery: the table's row (or
// the peer's). An unknown name (a transport since removed) says nothing.
func legacyFacts(transport string) (carrier, delivery string, interval bool) {
	c := carrierOf(transport)
	if c == "" {
		return "", "", false
	}
	d, every := deliveryOf(transport, 1)
	return string(c), d, every > 0
}
