fake signature
