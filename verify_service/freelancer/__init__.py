"""The freelancer's side: launch links from the marketplace, freelancer sessions, verification pages."""
