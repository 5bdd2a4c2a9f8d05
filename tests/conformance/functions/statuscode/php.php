<?php
function handler($event)
{
    return ['statusCode' => 202, 'body' => ['ok' => true]];
}
