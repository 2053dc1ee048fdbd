policy "x" {
  network "n" {
  }
}

sandbox "s" {
  policy = policy.x
}
