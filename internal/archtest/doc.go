// Package archtest holds wirelab's architecture as a test (arch_test.go): which package never
// imports which, read from `go list -deps` and checked on every `go test`, so that an import that
// runs back up a layer fails with the chain that brings it in. The rules are the ones README's
// "How it is built" lists.
//
// It has no code besides its test and imports nothing; nothing imports it.
package archtest
