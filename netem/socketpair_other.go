//go:build !unix

package netem

import (
	"errors"
	"os"
)

func socketPair() (parent, child *os.File, err error) {
	return nil, nil, errors.New("the process bridge needs unix sockets; run the server in-process on this system")
}
