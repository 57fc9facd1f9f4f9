//go:build !linux

package netem

func maybeKernelKillChild() {}
