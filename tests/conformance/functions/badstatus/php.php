<?php
function handler($event)
{
    return ['status' => 42];
}
