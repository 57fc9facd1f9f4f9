package netem

type bridgeParent struct{}

func (b *bridgeParent) close() {}
