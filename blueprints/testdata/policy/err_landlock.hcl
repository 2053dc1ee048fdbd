policy "x" {
  landlock {
    min_abi = 99
  }
  process {
    max_open_files = 1.5
  }
}

sandbox "s" {
  policy = policy.x
}
