policy "x" {
  presets = ["github"]
  network "gh" {
    endpoint {
      host = "api.github.com"
    }
  }
}

sandbox "s" {
  policy = policy.x
}
