"""Seed data for the sandbox and the benchmark: deterministic, realistic production orders.

Orders are dated in 2026, have one to four lines with products and variants, sometimes a sales
order, and a fixed share of drafts and closed orders (which the export leaves out by default).
Nothing in them looks like a secret, so a test that searches output for secrets finds only real ones.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from traede_local.export_query import TIME_FORMAT

_SUPPLIERS = [
    ("Nordic Knitwear Mill", "PT"),
    ("Atlas Denim Works", "TR"),
    ("Linea Tessile Como", "IT"),
    ("Baltic Linen Co.", "LT"),
    ("Porto Shoe Factory", "PT"),
    ("Anatolia Cotton Textiles", "TR"),
    ("Dhaka Garment House", "BD"),
    ("Ho Chi Minh Outerwear", "VN"),
]
_PRODUCTS = [
    ("Merino Crew Neck", "Core"),
    ("Wide Leg Denim", "AW26"),
    ("Linen Shirt", "SS26"),
    ("Wool Overcoat", "AW26"),
    ("Organic Cotton Tee", "Core"),
    ("Pleated Midi Skirt", "SS26"),
    ("Leather Chelsea Boot", "AW26"),
    ("Cashmere Scarf", "AW26"),
    ("Puffer Jacket", "AW26"),
    ("Chino Trousers", "SS26"),
]
_COLORS = ["Black", "Navy", "Ecru", "Camel", "Forest Green", "Grey Melange", "Rust"]
_SIZES = ["XS", "S", "M", "L", "XL"]
_SHOPS = ["Copenhagen Flagship", "Webshop DK", "Stockholm Store", "Wholesale B2B"]


FIRST_ID = 1001


def seed_orders(count: int, seed: int = 1, start_id: int = FIRST_ID) -> list[dict[str, Any]]:
    """Deterministic, realistic production orders dated in 2026 (no secret-looking strings)."""
    rng = random.Random(seed)
    orders = []
    for i in range(count):
        order_id = start_id + i
        # Fixed positions guarantee a few drafts and closed orders even in small sets.
        status = "draft" if i % 10 == 3 else "closed" if i % 10 == 7 else rng.choice(["confirmed", "in_production"])
        created = datetime(2026, 1, 5, 8, 0, 0) + timedelta(days=rng.randint(0, 250), seconds=rng.randint(0, 36000))
        updated = created + timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 30000))
        delivery = created + timedelta(days=rng.randint(30, 120))
        supplier_index = rng.randrange(len(_SUPPLIERS))
        supplier_name, country = _SUPPLIERS[supplier_index]
        lines: list[dict[str, Any]] = []
        for n in range(rng.randint(1, 4)):
            product_index = rng.randrange(len(_PRODUCTS))
            name, collection = _PRODUCTS[product_index]
            color, size = rng.choice(_COLORS), rng.choice(_SIZES)
            lines.append(
                {
                    "id": order_id * 10 + n,
                    "sku": f"{collection}-{500 + product_index}-{color[:3].upper()}-{size}",
                    "quantity": rng.choice([24, 48, 60, 96, 120, 250, 500]),
                    "unit_cost": round(rng.uniform(4.5, 95.0), 2),
                    "product": {"id": 500 + product_index, "name": name, "collection": collection},
                    "variant": {"id": (500 + product_index) * 100 + _SIZES.index(size), "color": color, "size": size},
                }
            )
        sales_orders: list[dict[str, Any]] = []
        if rng.random() < 0.3:
            line = lines[0]
            sales_orders.append(
                {
                    "id": 70000 + order_id,
                    "order_number": f"SO-{70000 + order_id}",
                    "delivery": {"id": 90000 + order_id, "date": delivery.strftime("%Y-%m-%d")},
                    "shop": {"id": 30 + i % len(_SHOPS), "name": _SHOPS[i % len(_SHOPS)]},
                    "lines": [
                        {
                            "id": 80000 + order_id,
                            "sku": line["sku"],
                            "quantity": 12,
                            "product": dict(line["product"]),
                            "variant": dict(line["variant"]),
                        }
                    ],
                }
            )
        orders.append(
            {
                "id": order_id,
                "order_number": f"PO-{order_id}",
                "status": status,
                "currency": rng.choice(["DKK", "EUR", "SEK", "NOK"]),
                "created_at": created.strftime(TIME_FORMAT),
                "updated_at": updated.strftime(TIME_FORMAT),
                "delivery_date": delivery.strftime("%Y-%m-%d"),
                "supplier_id": 200 + supplier_index,
                "supplier": {"id": 200 + supplier_index, "name": supplier_name, "country": country},
                "lines": lines,
                "deliveryNotes": [],
                "salesOrders": sales_orders,
            }
        )
    return orders


LARGE_ORDER_BYTES = 1_572_864  # about 1.5 MiB: over SQS's 1 MiB message limit, as a big production order


def seed_large_orders(count: int, start_id: int, seed: int = 1, size: int = LARGE_ORDER_BYTES) -> list[dict[str, Any]]:
    """Orders of just under `size` bytes of JSON: an ordinary seeded order with lines added up to that size."""
    orders = seed_orders(count, seed=seed, start_id=start_id)
    for order in orders:
        order["status"] = "confirmed"  # exported by default
        order["salesOrders"] = []  # the export may leave them out; the size is the lines'
        line = order["lines"][0]
        lines = [{**line, "id": order["id"] * 100_000 + n, "quantity": 100 + n % 400} for n in range(size // 200)]
        room = size - len(json.dumps(order))
        kept = 0
        for extra in lines:
            room -= len(json.dumps(extra)) + 2  # ", " between list items
            if room < 0:
                break
            kept += 1
        order["lines"] = order["lines"] + lines[:kept]
    return orders
