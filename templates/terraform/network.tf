{{ header("#") }}
#
# The path from each secondary region to the writer: a VPC peering
# connection between the regions' VPCs, a route each way in the private
# subnets' route tables, and security group rules by CIDR block (a group
# cannot be referenced across regions). Why peering and not a transit
# gateway or writes through the primary region's edge:
# modules/region/README.md.
{% for r in secondary_regions %}

# {{ r.name|comment }} ({{ r.aws_region|comment }}) <-> {{ primary_name|comment }} ({{ primary_region|comment }})
resource "aws_vpc_peering_connection" {{ r.module|hcl_label }} {
  region      = {{ r.aws_region }}
  vpc_id      = var.networks[{{ r.name }}].vpc_id
  peer_vpc_id = var.networks[{{ primary_name }}].vpc_id
  peer_region = {{ primary_region }}

  tags = {
    Name = "{{ project|key }}-{{ r.name|key }}-to-{{ primary_name|key }}"
  }
}

resource "aws_vpc_peering_connection_accepter" {{ r.module|hcl_label }} {
  region                    = {{ primary_region }}
  vpc_peering_connection_id = aws_vpc_peering_connection.{{ r.module|key }}.id
  auto_accept               = true

  tags = {
    Name = "{{ project|key }}-{{ r.name|key }}-to-{{ primary_name|key }}"
  }
}

# Outbound from {{ r.name|comment }}: PgBouncer to the writer.
resource "aws_route" "{{ r.module|key }}_to_{{ primary_module|key }}" {
  for_each = toset(var.networks[{{ r.name }}].route_table_ids)

  region                    = {{ r.aws_region }}
  route_table_id            = each.value
  destination_cidr_block    = var.networks[{{ primary_name }}].cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.{{ r.module|key }}.id
}

# The way back, for the writer's answers.
resource "aws_route" "{{ primary_module|key }}_to_{{ r.module|key }}" {
  for_each = toset(var.networks[{{ primary_name }}].route_table_ids)

  region                    = {{ primary_region }}
  route_table_id            = each.value
  destination_cidr_block    = var.networks[{{ r.name }}].cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.{{ r.module|key }}.id
}
{% endfor %}
