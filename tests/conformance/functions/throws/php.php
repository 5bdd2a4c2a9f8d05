<?php
function handler($event)
{
    throw new RuntimeException('boom');
}
