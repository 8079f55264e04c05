"""Every write in torii goes through a service in this package (HackSoft styleguide)."""
