package results

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	Legacy = namesOfThatTime
	goleak.VerifyTestMain(m)
}

// namesOfThatTime is what the lab's table says of the transports files held before runs carried
// their carrier and delivery (lab sets Legacy from the table; lab's TestLegacyFacts checks the two
// agree): the tests' synthetic runs leave both out.
func namesOfThatTime(t string) (carrier, delivery string, interval bool) {
	carrier, delivery = CarrierTCP, DeliveryPush
	if strings.HasPrefix(t, "wt-") || t == "auto" {
		carrier = CarrierQUIC
	}
	switch t {
	case "shortpoll":
		return carrier, DeliveryPoll, true
	case "longpoll":
		return carrier, DeliveryPoll, false
	}
	return carrier, delivery, false
}
