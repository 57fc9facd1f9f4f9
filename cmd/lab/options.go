package main

import (
	"log/slog"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports"
)

func transportsOptions(secret string, origins []string, log *slog.Logger) transports.ServerOptions {
	return transports.ServerOptions{Signer: chat.NewSigner(secret), AllowOrigins: origins, Logger: log}
}
