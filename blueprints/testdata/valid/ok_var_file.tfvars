size = 64
name = "from-var-file"
