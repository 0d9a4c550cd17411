"""What every request passes through before and after routing: guards, limits, headers, observation."""
