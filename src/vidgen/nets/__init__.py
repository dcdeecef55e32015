"""Plain ``nn.Module`` architectures, one module per paper. Imports nothing else from vidgen."""
