"""A small order system written to be tested in a TestEnvironment.

Three services, each configured only through environment variables the
operator injects (datastore URLs from the environment's Secrets, stub URLs):

- orders (PostgreSQL): takes an order and runs its saga: reserve stock,
  charge the card at the payment gateway, hand it to shipping; releases the
  stock again when the charge fails.
- inventory (MySQL): products, stock and reservations.
- shipping (Redis): a queue of shipments, worked off in the background; each
  shipment sends a mail through the email provider.
"""
